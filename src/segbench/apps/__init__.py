"""What people use: the command line, file output and drawing, the Bone Detect web app, run lookup and
the MLflow model."""
