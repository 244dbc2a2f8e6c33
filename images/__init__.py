"""Container images of word-ocr: their Dockerfiles, and the standard-library tools that build, run and measure them."""
