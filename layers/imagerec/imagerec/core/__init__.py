"""The core: pure, typed steps from untrusted bytes to labelled probabilities.

Intake, preprocessing, the inference runtimes, labels, the category hierarchy and how results
read; errors and settings, which every layer shares. It imports no other layer.
"""
