"""Training: the recipe shared by every architecture x loss pair."""
