"""Onboarding onto a populated WORKBOX: the external keys syncd will use, for the admin's mapping form."""
