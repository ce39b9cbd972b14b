"""The message library: mail in wire form, read without any protocol in mind.

IMAP renders ENVELOPE, BODYSTRUCTURE and BODY[section] from it and the web console shows
headers, text, HTML and attachments with it, so both number parts the same way. Nothing here
imports a protocol package, the store or asyncio; nothing here raises on malformed mail.

- ``wire``: the wire form (CRLF line ends, where the header ends)
- ``headers``: header fields with their wire offsets
- ``delimiters``: finding multipart boundary delimiters in a body
- ``content_fields``: Content-Type, Content-Disposition, parameters, languages
- ``content_info``: the Content-* values of one part
- ``structure``: the MIME tree of a message as byte offsets
- ``part_numbers``: part numbers (``1.2``) and the part each names
- ``addresses``: RFC 5322 address lists
- ``encoded_words``: RFC 2047 encoded words and charsets
- ``transfer_encoding``: base64 and quoted-printable
- ``text``: decoded, searchable text of headers and text parts
- ``bodies``: the text and HTML bodies a reader shows, and the attachments
"""
