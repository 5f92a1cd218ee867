"""Content routes of the gateway: public reads (cached) and the admin CMS API."""
