"""HL7 v2 ADT feeds: reading a message's header, acknowledging it, storing it, and turning
its event into a patient sync (the MLLP listener itself lives in `holovitals_sync.mllp`)."""
