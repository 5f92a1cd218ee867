"""HTTP behaviour shared by every route: request ids, error bodies, security
headers, CORS, body parsing, timeouts and path normalisation."""
