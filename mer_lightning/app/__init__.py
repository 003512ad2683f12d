"""A page in the browser: upload a photo or take one with the browser's camera, and see each
face boxed with its emotion and the probability of every class.

`python -m mer_lightning.app [ckpt=PATH]` serves it with Gradio (the optional `app` extra);
the faces go through the same pipeline as `python -m mer_lightning.predict` (page.py).
"""
