"""The loss registry's table: one entry per term, its name, its builder ("module:function", imported only when
built), its family, its source, its formula and the options a ``losses.<name>`` item may set, with their defaults
(``segbench list losses``; a unit test checks them against the function's signature). Adding a term is one
function in its family's module plus one entry here.

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


def _add(name: str, family: str, source: str, summary: str, options: dict, *checks: Check) -> None:
    """A term whose builder is the function ``name`` of the module ``family``."""
    LOSSES.add(name, f"segbench.losses.{family}:{name}", source, summary, options=options, family=family,
               checks=checks)


_add("ce", "distribution", "torch",
     'Cross-entropy, -sum_c g_c log p_c; class_weights: list (background first) or "auto".',
     {"class_weights": None}, _CLASS_WEIGHTS)
_add("weighted_ce", "distribution", "Long et al., 2015; torch",
     'Weighted cross-entropy, w_c = N / (C * N_c) from training-set frequencies by default.',
     {"class_weights": "auto"}, _CLASS_WEIGHTS)
_add("topk", "distribution", "Wu et al., 2016; own (no library)",
     'TopK cross-entropy: mean CE over the k % pixels with the largest CE.',
     {"k": 10.0},
     Check("k", lambda o: 0 < o["k"] <= 100, "must be a percentage in (0, 100]"))
_add("focal", "distribution", "Lin et al., 2017; smp",
     'Focal loss, -alpha_t (1 - p_t)^gamma log p_t (RetinaNet).',
     {"gamma": 2.0, "alpha": None}, at_least("gamma", 0), _FOCAL_ALPHA)
_add("dice", "region", "Milletari et al., 2016; smp, or MONAI when smoothed",
     'Soft Dice, 1 - 2|P.G| / (|P| + |G|), over the batch.',
     {"smooth": 0.0, "eps": 1e-7}, at_least("smooth", 0))
_add("generalized_dice", "region", "Sudre et al., 2017; MONAI",
     'Generalised Dice, 1 - 2 sum_c w_c |P_c.G_c| / sum_c w_c (|P_c| + |G_c|), w_c = 1/|G_c|^2, per image.',
     {"smooth": 1e-5}, at_least("smooth", 0))
_add("squared_dice", "region", "Milletari et al., 2016 (V-Net); MONAI",
     'V-Net Dice with squared denominators, 1 - 2|P.G| / (|P|^2 + |G|^2), per image.',
     {"smooth": 1e-5}, at_least("smooth", 0))
_add("jaccard", "region", "Rahman & Wang, 2016; smp, or MONAI when smoothed",
     'Soft IoU (Jaccard), 1 - |P.G| / (|P| + |G| - |P.G|), over the batch.',
     {"smooth": 0.0, "eps": 1e-7}, at_least("smooth", 0))
_add("tversky", "region", "Salehi et al., 2017; smp, or MONAI when smoothed",
     'Tversky, 1 - TP / (TP + alpha FP + beta FN).',
     {"alpha": 0.3, "beta": 0.7, "smooth": 0.0}, *_TVERSKY)
_add("focal_tversky", "region", "Abraham & Khan, 2019; smp Tversky, own power",
     'Focal Tversky, (1 - TI)^(1/gamma), gamma in [1, 3].',
     {"alpha": 0.3, "beta": 0.7, "gamma": 4 / 3, "smooth": 0.0},
     *_TVERSKY, Check("gamma", lambda o: o["gamma"] > 0, "must be positive (the exponent is 1/gamma)"))
_add("log_cosh_dice", "region", "Jadon, 2020; own over smp Dice",
     'Log-Cosh Dice, log(cosh(L_Dice)).',
     {"smooth": 0.0}, at_least("smooth", 0))
_add("lovasz", "region", "Berman et al., 2018; smp",
     'Lovasz hinge (binary) / Lovasz-softmax (multiclass), a convex surrogate of IoU.',
     {"per_image": False})
_add("boundary", "boundary", "Kervadec et al., 2019; own",
     'Boundary loss, mean(s * phi_G) with signed distance phi_G; may be negative.',
     {})
_add("hausdorff", "boundary", "Karimi & Salcudean, 2019; own, equal to MONAI's",
     'Hausdorff-distance loss, mean((p - g)^2 (d_G^a + d_P^a)).',
     {"alpha": 2.0},
     Check("alpha", lambda o: o["alpha"] > 0, "must be positive"))
_add("shape_aware", "boundary", "Jadon, 2020; own",
     'Shape-aware loss, CE + E * CE with E the predicted-to-true contour distance.',
     {})
_add("distance_penalty", "boundary", "Caliva et al., 2019; own",
     'Distance-map penalised CE, mean((1 + Phi) * CE).',
     {})
_add("combo", "compound", "Taghanaki et al., 2019; own",
     'Combo loss, alpha * weighted CE + (1 - alpha) * (1 - Dice).',
     {"alpha": 0.5, "beta": 0.5}, within("alpha", 0, 1), within("beta", 0, 1))
_add("exp_log", "compound", "Wong et al., 2018; own",
     'Exponential logarithmic loss, w_d E[(-ln Dice)^g] + w_c E[w (-ln p)^g].',
     {"w_dice": 0.8, "w_ce": 0.2, "gamma_dice": 0.3, "gamma_ce": 0.3, "class_weights": None}, at_least("gamma_dice", 0),
     at_least("gamma_ce", 0), _CLASS_WEIGHTS)
_add("unified_focal", "compound", "Yeung et al., 2022; own (MONAI's applies no activation)",
     'Asymmetric Unified Focal loss, lambda maF + (1 - lambda) maFT.',
     {"weight": 0.5, "delta": 0.6, "gamma": 0.5},
     within("weight", 0, 1), within("delta", 0, 1), within("gamma", 0, 1))
_add("dice_ce", "compound", "nnU-Net style; MONAI",
     'Dice + cross-entropy, per image Dice (as nnU-Net uses).',
     {"lambda_dice": 1.0, "lambda_ce": 1.0}, at_least("lambda_dice", 0), at_least("lambda_ce", 0))
_add("dice_focal", "compound", "the thesis; smp",
     "The thesis's omega * Dice + (1 - omega) * Focal.",
     {"omega": 0.7, "gamma": 2.0, "alpha": None}, within("omega", 0, 1), at_least("gamma", 0),
     _FOCAL_ALPHA)

# Terms that give exactly zero loss on a batch whose truth is empty, whatever the prediction (smp
# masks absent classes out), unless ``smooth`` > 0 switches them to nnU-Net's smoothed batch form.
BLIND_ON_EMPTY = ("dice", "jaccard", "tversky", "focal_tversky", "log_cosh_dice")
