"""Lambda entry point of the bulk classification (BatchFunction's ImageConfig command,
``batch.batch_handler``): the same image and classifier as ``app.handler``, entered here so that
this function loads only what a Distributed Map batch needs, in the init phase."""

from imagerec.compose import load_batch_handler

batch_handler = load_batch_handler()
