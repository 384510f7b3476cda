"""nnU-Net trainer classes under segbench's own names, in a folder nnU-Net searches through ``nnUNet_extTrainer``
(how nnU-Net v2 loads trainers that live outside its package)."""
