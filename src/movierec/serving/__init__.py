"""`movierec serve`: the HTTP API, its engine, the feedback store and the web page."""
