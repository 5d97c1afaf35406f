"""imagerec: photo bytes in, ranked ImageNet labels out."""
