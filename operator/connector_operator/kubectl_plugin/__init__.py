"""`kubectl connector`: the kubectl plugin (the console script `kubectl-connector`).

`outcome` decides what a Connector's status says of an action (pure), `view` renders what a
user reads (pure), `client` is the only module that talks to the API server, and `cli` parses
the command line and maps outcomes to exit codes. It never imports the operator's runtime."""
