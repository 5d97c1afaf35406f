"""imagerec: photo bytes in, ranked ImageNet labels out.

    >>> import imagerec
    >>> classifier = imagerec.load_classifier()
    >>> classifier.classify(open("photo.jpg", "rb").read()).predictions[0].label
"""

from imagerec.classifier import Classification, Classifier, Prediction, load_classifier
from imagerec.errors import ImagerecError

__all__ = ["Classification", "Classifier", "ImagerecError", "Prediction", "load_classifier"]
