"""The MLLP listener for HL7 v2 ADT feeds (`holovitals-sync mllp`): an edge of the product,
like the API, that stores what senders hand it and leaves the work to the queues."""
