"""Server personas: mailsrv presenting itself as a well-known IMAP server does.

A persona is data (``catalog.py``): the capability lists the real server documents before and
after login, its greeting, its ID answer, the special-use folders a new user gets and its message
size limit, each difference with the public source it comes from. ``persona.py`` turns mailsrv's
own capability list into the persona's: it keeps, in the persona's order, what both have, renames
what the persona names differently and adds only the extensions mailsrv implements for it, so a
capability mailsrv gains later shows up in every persona that documents it. The IMAP layer asks
the persona (``ServerContext.persona``) for the list, the greeting and the ID answer, and refuses
the commands of the extensions a persona does not offer (``mailsrv.imap.persona_gate``).
"""
