"""The Model Context Protocol: captioning tools for assistants (:mod:`~captioner.web.mcp.tools`), over stdio
(``captioner mcp``) and over streamable HTTP at ``/mcp`` on the web server (:mod:`~captioner.web.mcp.http`)."""
