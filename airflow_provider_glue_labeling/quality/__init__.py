"""Quality: Glue's metrics of a transform (``metrics``), the rounds of its history (``rounds``),
the evaluation's decisions (``decision``) and their chart (``chart``)."""
