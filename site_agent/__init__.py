"""The hospital site agent: HL7 v2 / FHIR R5 ingestion, the live census twin, the durable outbox.

Runs inside the hospital network (`python -m site_agent run --config site.toml`). It never imports
the hub or governance; it publishes only to the site's own raw Kafka topic, which the DE-ID layer
reads inside the hospital.
"""

__version__ = "0.1.0"
