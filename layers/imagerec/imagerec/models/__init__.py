"""Models: the registry, the EfficientNet-Lite builder and its weights, and the classifier that
serves a built model over the core. It imports only the core.
"""
