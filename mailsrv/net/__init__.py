"""The connection layer every listener shares (POP3, IMAP, SMTP), one concept per module:

- ``local``: which names and addresses are this machine's (loopback, Host checks);
- ``admission``: whether a new connection is served (connection limits, blocked peers);
- ``sasl``: sans-I/O SASL exchanges with strict decoding: PLAIN, LOGIN, SCRAM-SHA-256
  (``sasl_scram``, keys in ``scram_keys``), OAUTHBEARER and XOAUTH2 (``sasl_oauth``); the steps
  they hand a protocol are in ``sasl_steps``;
- ``faults``: what an injected fault does to the command about to run;
- ``stream``: one connection as an ``asyncio.Protocol``, with a STARTTLS upgrade that drops
  plaintext pipelined after the upgrade command;
- ``shutdown``: the graceful shutdown (goodbye when idle, after the command when busy).

Each protocol only renders the answers in its own words.
"""
