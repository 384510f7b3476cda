"""The `report` stage: comparison tables of every pair."""
