"""The relying party's side of JPKI: a TEST revocation service the harness controls.

:mod:`.registry` is the issuer's record of every certificate and its lifecycle on the
movable clock (a move or a name change revokes the signing certificate, a lost card puts
both on hold); :mod:`.responder` turns it into signed CRLs and OCSP answers;
:mod:`.server` serves them over HTTP on localhost; :mod:`.client` is what a relying party
uses to ask; :mod:`.log` is the service's log of decisions, which ``myna-hil trace explain
--service-log`` reads beside a trace. Everything is TEST: the keys are the harness's TEST
CAs, never J-LIS's. See docs/relying-party.md.
"""
