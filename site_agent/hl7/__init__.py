"""HL7 v2: ER7 parsing and encoding, MLLP framing, ACKs, and ADT → twin events."""
