"""The browser console: server-rendered pages for every person who uses facematch, over the
same route functions, rules and audit log as the API."""
