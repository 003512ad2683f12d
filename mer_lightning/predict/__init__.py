"""Predict the emotion of faces in photos, folders and a webcam (the paper's Figures 7-13).

`python -m mer_lightning.predict ckpt=PATH input=PATH`: faces found with OpenCV's Haar
cascade (faces.py) are cropped, enhanced and classified (pipeline.py); the results go to a
table, predictions.{csv,json} and annotated images (outputs.py). webcam.py is the live mode.
"""
