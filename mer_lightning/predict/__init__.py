"""Predict the emotion of faces in photos, folders, videos and a webcam (the paper's Figures 7-13).

`python -m mer_lightning.predict input=PATH [ckpt=PATH]`: faces found by MediaPipe's
BlazeFace (blazeface.py, the dataset's own detector) or OpenCV's Haar cascade (faces.py) are
cropped as the training faces were and classified (pipeline.py) by a run's checkpoint or the
model shipped with the package (shipped.py); the results go to a table, CSV/JSON files, plots
and annotated copies (outputs.py). video.py is the frame loop of video files and the webcam
(webcam.py); devset.py scores the crop settings on labelled photos.
"""
