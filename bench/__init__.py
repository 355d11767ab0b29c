"""Rate-distortion benchmark of cdcodec against standard image codecs (`cdcodec bench`)."""
