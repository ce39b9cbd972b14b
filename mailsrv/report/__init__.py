"""The client report card: habits a client shows in its sessions, noticed from the transcript
lines (sans-I/O observers, one per protocol) and kept per session and per user."""
