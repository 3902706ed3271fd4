"""The composition root: builds the engine, clock, campaign set, senders, issuers and
dispatcher from settings. Only the entry points (``cli``, ``flows``) import it."""
