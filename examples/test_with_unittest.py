"""mailsrv with unittest: ``ThreadedMailServer`` runs on its own thread behind a plain API.

Run: python examples/test_with_unittest.py   (or python -m unittest, or pytest)
"""

from __future__ import annotations

import imaplib
import smtplib
import unittest

from mailsrv.testing import ThreadedMailServer


class MailTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # One server for the class (starting one takes milliseconds; one per test works too).
        cls.server = ThreadedMailServer(users={"alice": "s3cret"}, dev=False)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.server.reset()  # no mail left over from the previous test; alice stays

    def test_mail_sent_by_smtp_arrives(self):
        with smtplib.SMTP(self.server.host, self.server.ports.smtp) as smtp:
            smtp.sendmail(
                "bob@example.com",
                ["alice@localhost"],
                "Subject: Hi\r\n\r\nHello Alice\r\n",
            )

        [msg] = self.server.wait_for_messages("alice", 1)
        self.assertEqual(msg.subject, "Hi")
        self.assertEqual(msg.text, "Hello Alice\n")

    def test_imap_sees_delivered_mail(self):
        self.server.deliver("alice", "Subject: Report\n\nnumbers\n")

        with imaplib.IMAP4(self.server.host, self.server.ports.imap) as imap:
            imap.starttls(self.server.client_ssl_context())
            imap.login("alice", "s3cret")
            _, [count] = imap.select("INBOX")
        self.assertEqual(count, b"1")

    def test_wrong_password_is_refused(self):
        with (
            imaplib.IMAP4(self.server.host, self.server.ports.imap) as imap,
            self.assertRaises(imaplib.IMAP4.error),
        ):
            imap.login("alice", "wrong")


if __name__ == "__main__":
    unittest.main()
