"""Reference methods beside the sweep's pairs, trained on the same split and scored by the same evaluation:
``sweep.baselines``. Their rows are ``<baseline>__default``."""
