"""The loss registry's table: one line per term, its name, its builder ("module:function", imported only when
built), its family and its source. A term's options are its builder's keyword arguments (``segbench list
losses``). Adding a term is one function in its family's module plus one line here.

The table is code the pipeline tracks per entry: a train job depends on its terms' lines and modules, not
on this file (``segbench.pipeline``).
"""

from __future__ import annotations

from segbench.registry import Check, Registry, at_least, within

MODES = ("binary", "multiclass")
FAMILIES = ("distribution", "region", "boundary", "compound")
RESERVED = ("term", "weight", "ramp", "max_weight")  # keys of a spec item that are not the term's options
LOSSES = Registry("loss term", reserved=("ctx",))

_CLASS_WEIGHTS = Check("class_weights", lambda o: o["class_weights"] in (None, "auto") or (
    isinstance(o["class_weights"], list) and all(isinstance(w, (int, float)) and w >= 0 for w in o["class_weights"])),
    "must be null, 'auto' or a list of non-negative weights (background first)")
_TVERSKY = (at_least("alpha", 0), at_least("beta", 0), at_least("smooth", 0),
            Check("beta", lambda o: o["alpha"] + o["beta"] > 0, "alpha + beta must be positive"))
_FOCAL_ALPHA = Check("alpha", lambda o: o["alpha"] in (None, "auto") or 0 <= o["alpha"] <= 1,
                     "must be null, 'auto' or in [0, 1]")


def _add(name: str, family: str, source: str, *checks: Check) -> None:
    """A term whose builder is the function ``name`` of the module ``family``."""
    LOSSES.add(name, f"segbench.losses.{family}:{name}", source, family=family, checks=checks)


_add("ce", "distribution", "torch", _CLASS_WEIGHTS)
_add("weighted_ce", "distribution", "Long et al., 2015; torch", _CLASS_WEIGHTS)
_add("topk", "distribution", "Wu et al., 2016; own (no library)",
     Check("k", lambda o: 0 < o["k"] <= 100, "must be a percentage in (0, 100]"))
_add("focal", "distribution", "Lin et al., 2017; smp", at_least("gamma", 0), _FOCAL_ALPHA)
_add("dice", "region", "Milletari et al., 2016; smp, or MONAI when smoothed", at_least("smooth", 0))
_add("generalized_dice", "region", "Sudre et al., 2017; MONAI", at_least("smooth", 0))
_add("squared_dice", "region", "Milletari et al., 2016 (V-Net); MONAI", at_least("smooth", 0))
_add("jaccard", "region", "Rahman & Wang, 2016; smp, or MONAI when smoothed", at_least("smooth", 0))
_add("tversky", "region", "Salehi et al., 2017; smp, or MONAI when smoothed", *_TVERSKY)
_add("focal_tversky", "region", "Abraham & Khan, 2019; smp Tversky, own power",
     *_TVERSKY, Check("gamma", lambda o: o["gamma"] > 0, "must be positive (the exponent is 1/gamma)"))
_add("log_cosh_dice", "region", "Jadon, 2020; own over smp Dice", at_least("smooth", 0))
_add("lovasz", "region", "Berman et al., 2018; smp")
_add("boundary", "boundary", "Kervadec et al., 2019; own")
_add("hausdorff", "boundary", "Karimi & Salcudean, 2019; own, equal to MONAI's",
     Check("alpha", lambda o: o["alpha"] > 0, "must be positive"))
_add("shape_aware", "boundary", "Jadon, 2020; own")
_add("distance_penalty", "boundary", "Caliva et al., 2019; own")
_add("combo", "compound", "Taghanaki et al., 2019; own", within("alpha", 0, 1), within("beta", 0, 1))
_add("exp_log", "compound", "Wong et al., 2018; own", at_least("gamma_dice", 0),
     at_least("gamma_ce", 0), _CLASS_WEIGHTS)
_add("unified_focal", "compound", "Yeung et al., 2022; own (MONAI's applies no activation)",
     within("weight", 0, 1), within("delta", 0, 1), within("gamma", 0, 1))
_add("dice_ce", "compound", "nnU-Net style; MONAI", at_least("lambda_dice", 0), at_least("lambda_ce", 0))
_add("dice_focal", "compound", "the thesis; smp", within("omega", 0, 1), at_least("gamma", 0),
     _FOCAL_ALPHA)

# Terms that give exactly zero loss on a batch whose truth is empty, whatever the prediction (smp
# masks absent classes out), unless ``smooth`` > 0 switches them to nnU-Net's smoothed batch form.
BLIND_ON_EMPTY = ("dice", "jaccard", "tversky", "focal_tversky", "log_cosh_dice")
