"""--tls-cert/--tls-key: the same port speaks https and wss."""

from __future__ import annotations

import ssl
import subprocess
import sys

import pytest
import trustme
from websockets.sync.client import connect


@pytest.fixture(scope="module")
def authority_and_target(start_target, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    cert, key = folder / "cert.pem", folder / "key.pem"
    issued.cert_chain_pems[0].write_to_path(cert)
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(cert, append=True)
    issued.private_key_pem.write_to_path(key)
    target = start_target(["--profile", "fixed", "--ttfc-ms", "5", "--chunks", "3",
                           "--tls-cert", str(cert), "--tls-key", str(key)])
    return authority, target, (cert, key)


def test_tls_target_announces_https_and_serves_wss(authority_and_target):
    authority, target, _ = authority_and_target
    assert target.process.base_url.startswith("https://127.0.0.1:")
    assert target.process.ws_url.startswith("wss://127.0.0.1:")
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    token = target.mint()
    with connect(f"{target.process.ws_url}?consultation_id=c&token={token}",
                 additional_headers={"X-API-Key": target.api_key}, ssl=client_context,
                 compression=None, proxy=None) as ws:
        target.send_user_message(ws, "secure")
        assert target.types_of(target.read_reply(ws))[-1] == "ai_message_complete"
    assert target.process.stats()["streams_completed"] == 1  # admin API over https


def test_tls_needs_both_files(authority_and_target):
    _, _, (cert, _) = authority_and_target
    result = subprocess.run([sys.executable, "-m", "loadtest.target", "--tls-cert", str(cert)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--tls-key" in result.stderr
