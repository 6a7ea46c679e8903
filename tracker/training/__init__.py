"""Training: patch cache + SiamFC pair sampling, augmentation, losses, distillation and the trainer."""
