"""Quality: the rounds of a transform's history (``rounds``), the evaluation's decisions (``decision``)
and their chart (``chart``)."""
