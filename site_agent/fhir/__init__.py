"""FHIR R5: Encounter/Location mapping, the agent's HTTP endpoint, and the EHR poller."""
