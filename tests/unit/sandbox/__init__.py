"""The Gorgias sandbox (gorgias_sandbox/): its contract against the documented and recorded Gorgias API."""
