"""Per-image segmentation metrics: overlap (from one confusion matrix, ``overlap``), boundary (from surface
distances, ``boundary``) and lesion detection (``detection``), with one empty-mask policy (``image``). Pure NumPy and
SciPy, so training and evaluation share them; import the module you need (training's validation needs ``overlap``
alone, and a job depends on the code it imports)."""
