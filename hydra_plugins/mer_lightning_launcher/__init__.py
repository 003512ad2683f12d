"""Hydra launcher plugin of mer_lightning (Hydra finds plugins only in `hydra_plugins`)."""
