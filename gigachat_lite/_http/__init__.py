"""Everything that touches requests and urllib3 below the Session: the adapter, retries, deadlines, the CA bundle."""
