"""imagerec: photo bytes in, ranked ImageNet labels out.

``imagerec.load_classifier().classify(Path("photo.jpg").read_bytes()).predictions[0].label``
"""

from imagerec.core.errors import ImagerecError
from imagerec.models.classifier import Classification, Classifier, Prediction, load_classifier

__all__ = ["Classification", "Classifier", "ImagerecError", "Prediction", "load_classifier"]
