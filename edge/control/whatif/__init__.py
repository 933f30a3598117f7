"""``edgelab whatif``: a request log evaluated offline against distributions with the POPs' cache code."""
