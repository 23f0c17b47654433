"""TEST keys and card-verifiable certificates of the text and surface APs (and the common AP's
INTERNAL AUTHENTICATE key).

Real cards sign the text AP's integrity record (``0003``) and the surface AP's records with
keys of the issuing authority, certified by a card-verifiable certificate in EF ``0004``
[card]. This project has no such keys: four **TEST** RSA-2048 keys are published below on
purpose (like the TEST issuer key of :mod:`emulator.commands`); no real card or verifier
trusts them. The certificate layout is the one §10 of the reference records [card]
(568 bytes: a ``7F21`` holding a ``7F4E`` body -- issuer key id, subject key id, public key as
``90`` modulus / ``91`` exponent -- and a ``5F37`` signature); the byte-exact body encoding
and the signature scheme (PKCS#1 v1.5 SHA-256 over the ``7F4E`` object) are [model].
"""

from __future__ import annotations

import functools
import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from emulator.grammar import Tlv
from emulator.grammar.ids import CVC

KEY_ID_SIZE = 16

#: [model] The TEST issuer (root) key: signs the APs' certificates.
TEST_ISSUER_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCasKrNLD59flWL
JWnKZqA5hLYyrhT68rUio41cF+5j+XnchnbkGQ7gNSolVgfIwebFs3xHoJQ4iSQ5
Yt628UMkoBkZWV+kZ27AItb/stfXecCkSNkCVKBj+zog+sYP+RXgUwYv6u81NPn9
oPwyy11MtpYPc3zuz8+fvjv8WZlyTRuE4jb/ym6sUNeZoT7w82HO82nXXR5mH+61
WbFhVG4b7kt6K86+HkiwYDv5I56ieWv3E9wYAUNJKysiFlFnmQKmrXJzEZ0SJFP2
9FO0R9nOYxf20A8L7CgA9LIe5I3CfF2g2I5CbJrsOWTlKYVWFf3OhAoRS8DuftSO
UM2TXcqvAgMBAAECggEACKHwpjU14jhOpc6XXMg6tiWwf/DfEtzAkbJMN+YjU55J
2ANZAdm0JCb+DHSvR9t/pBYkIAssumBM4+GfSYOlROyk+e6BkTcvIwx5WxkBRUZy
Iw49rgzy9nbAA7R69naRa0y20lhrXljFKrZKh2XPSxyquyoCwCuwtoVzQN3vMPBZ
CWUd6NsyqMcaboIvV1DZzDwD4/DIaeWDFAPiKzvZl+38c1HbtkHk0j2i144/qU7S
68exIjhZbX/nGgZFqBFRx61qCrH2euHIt3f2+5qPl2hiH4Jmzfrr9LyOjL7rMdMz
ZXZmwRA4xIaV7AbeO/7VG7pB4ioVR1MjeGWwSN7IgQKBgQDX1Nwh4hNPKA86SZEA
cdBaiC7w9EgtIO2PhhmtH0YNpRuzAov5lF7PmlJlpEpDkBt5l7axeBMlZYRV7aRK
ZDuPbo8EjQZVhWsPfOdOvfigAfJlbrmOx3GzaIwQ0t1yhzu0vEtYNeLDZFG0oP7A
qaI6bHZ9U5uCcoyvTJ9FicIKsQKBgQC3esTlAdNvgDaQUhLSOVBO4HIl0+pcIWkW
X/JmsCLCAgE7s2EvB8He5elFH0ulBNjYJs+F8+pQn7VxfQ1ZKkLopmVs3UVXQ1la
mevnIJKSaopZUSyNHr8CeoH411uSo8ypCHNYDtmaWTFXDE0kOmxoBZvbM2DEZ8H6
o1PIKWfDXwKBgCjbPIiVeT5EwQ0xm+dPpDdfDDPEql0QnKfMpNOm1eYDWUj7tG+c
bI40EmD3Rq+fefP8ijLyHf24R+LUR4NlkfjG3v/niklqJigaZtb7EzOG6tHUsf+b
NaTWp50Prafefajq9ABQwwpl1SmySEdEVVdl7NAwoYGCGaudf5D0UO0hAoGBAIvy
tKQIlIGDxhqmv3xiAwNm5yo7TZMgWMucO4Rf7OMWLGKhHAuHWzTtINR8XnJsFAoq
8Dc4KQ1+BCOgQsI0HfzejpZO4EkDMfCNXwZYLfRIF2axJ84sGX2GfASWH17mWYDE
1VXhXdEBH0VKOLzdYzqkrJCxy6mDis3mLk2KZ375AoGAa4PmPF9cGbazMHm9HLEI
LOoP0Vc5xzJEW6FJ9sq7nooM6Ux7OopQBejgNqtRh0+u+V+GXzJKYQeF/rStliHd
pO/vsbGRy+K9qiS6URA/l7M+VshDp/HHPw2jM8GCah9vao9lN3veJ+rsqdfJPdf6
SkQ/LxEXNNp52MXlz3Ln5xs=
-----END PRIVATE KEY-----"""
#: [model] The TEST text-AP key: signs text AP 0003, certified in text AP 0004.
TEST_TEXT_AP_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCstBj5XSZ2vrA3
0CdMaJb13hLeGh2GvibFHzn/sZEFQt08n4G0rrw9NI+GXEepMy5xqsddWuIPDnG5
YTi67uerDRo1+pN9+PNabX40cJmrwJLxfW6g8RKb/5hmplLlExEOFSHlx2pCBYe+
Isew+36BViHG0/MWRyZklxWjGhrEqoep9jnFn+Vwdc+UwCAQkWp78ncUXmlf7sc7
kKslC3hm37WoLX1wajOGA5LcJwbTDKcxlEDSPTRFOavJlup6Z466RfvAgA+jEqnd
Bh7SbfqE95Iwt1eFVZQSZXL98A5TQyRzwO8BHy5oQEcDslT/FtaYmWvMPPJWRUzq
/cqACEcvAgMBAAECggEADvHXbBNmpdroIS72351OBuusgqIMO7c5CqYiR4vu6ooi
iUGc9ezdptw6rpv4qt3IyexHK+nBQHVLBl7b4Q1AaI8N3W2YFXbACZYKWEZa0z/V
rLu3zDSK8Ys40xUsfNyIBXRzBlEZ0v8V2TBloF06/BKJ12H1mfrBNJjVtf38eAJ3
V2xfjl8LoFmSeHNiZBzOdfFBgSxe+Rz9BjfshCh0Hb174udLqP/PyU/YF/6WavYr
Qn5FW4tlbyUIRtHuwnOW2avqR51MZkyaAhPvtR73Ji5WSgWQOpQwyYhd3p6nc9u5
aOoeVmO+tx4JEIzUx0L9aNz+DzGXelCzawfX3V5XrQKBgQDWW8W1uSh/Tpk7JUGS
3IGa61raHDlEF7qTAgzGuWAXPeQRdNled/lcHPwDUHpV44HHdyNyVGgiqgBnZmr6
PJ6eBVuHXHnAwJ6j2XabpVYyz5FdTKMalkUTY0h2FW6vWKhVddekNQYXikVprIte
wlufZ+rvzuW+F83L51m28bgtWwKBgQDOQMnBDYADbfPGcVoGYEDHDVYKkQEf1AlI
u1Oxrcd9YRiEpvxXl/Yk1BEuEG63j8e+XK6kFS1nBKDp3z8Jb18G2Au7psEGMFAu
2b2FOE1ymMu207rRdILlImkVmctJF7o8pa7DdTDpS90MbP9X+j/n/2Cc288z4xgY
o36hIy9RvQKBgQCrT7y6dre+xnn/os69KC0MOnvpRBUgLjaVtlWvnAcHjBbxPIlb
zlYjH6bonzCl46ScXMKfZIW07lhUSq3EPx4k+/MiQu2q9kXSfMElswUopmpuPgk7
/kxGKlqGxKooyJn/cqZcPWQY/BBtW9Amcv32b357GMbTHQMDqmkwpA2lcQKBgAir
mo+eBKqgPaYy76ji9PYpLlvFWrm+zSEcltkaSA+SPFifOG5qOfO0YoCAOldHGQt8
k+7b4Qu6mxUZyGmaH/GGtX+O9ABRmZ1Ok/P8uOy/VZj675iMgFAnkSlSTMRm1fJk
uKMI0ySLhuBV2KoXIAadqq8NYnl463NltBYMB5o1AoGAGpzRaHppctOT4rjEBDPu
2+8guGAXuHvgidEbC60I6bMpTXj4+0R94yb5LIbBn2i08nV/aKXzh+615B51lOsL
NnVbwdXHxXo/ApbGi4z9jKAAsDskNJeRYUdf0ZPhNgZ6tFtSKmXQ2ARfU/CfEeAV
hSaFmFHht46kaYKQJHT8/2w=
-----END PRIVATE KEY-----"""
#: [model] The TEST surface-AP key: signs the surface AP's records, certified in its 0004.
TEST_SURFACE_AP_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDL9XmXmuhXa0PX
WiZunDWnEvaVb2UXRmOjktmSEz48h9bxiXvNVZ89tVwaEaBcaVEEX4ATi4mvHoLi
ly3mqHSw7NoRSCbb39UmDxF1r6aM1STzu+Bvte0qanhZwqpgleiPxwSDXAUCiYt3
uLNUJiZT/NbTd1sqmEOTEvWrFeeA2vAlvh9LjC8ieX3lUHGH8j9uorfmJ7mCIGXB
4h1sUyFvvQdCWh4vEBZABvIgP89JacbPwhqbU0ImC7hyNLg2644Zvg2hL4v6hz3A
zHx6R+jDSwFLagi/l4Aj7RZOR25SMQDHv0S12cgPe3SZwzET74170CoL9r/ZbcBw
Q7SMbvhzAgMBAAECggEAOji0oQZjVLEWCJ9/YQvOdQcAxN+rp908DDGbUguUNItC
XGi2ooLSljbzN63YbQjTS8BHO00V3JuFGVG2lKV5yheSmGRUU2et3NNoVIPzszgU
+E6lXr48GWOTP2xGXpPscz6Il0bpVzQUT/S1nEvXnRoL6QmlSJ92isFax5/VGf7j
Ch30DVg0Tmc7gDq7tZEkSrExvDDfjTQUAb/l/UQA1fW2sacoINzQck6H4iL9wml5
fPA2635yMz3ES8Gmacgn8wHeeq5l4V9YtrnAvGrnfvZttPaC3jyKeDVKAkpJq0bC
UYUhjQluU0nR89Nmt0yl8Mqz+r2xQHwDLaPpjwN7oQKBgQDtOQ/EBCgRAm5MuWSN
N1n/xrY9VlYcLxe1oQ+gwzDOVyz94jzuTjDGc10z+VlcqxDkCImKJv6oh3EnPF+k
n5L7eTuVDmZBOxRtIsedpFMVbtaj066pkMOk7/QCR7PZ/8AyGGPup7pSvrsWUs+t
bcx7bXMXrPavh4aWmPsMg1YIbwKBgQDcGl87wrUotVCgPPfvQgX4AkW/SorKLe2T
v/7hoe+4Rp2MJfWIqOtV8SGVo2KXG7P3w4fE5Ttl+v+duVYPOFgOc33oVi59tcxV
mOUThEuVSd064gaw1rX19Wm/yvcI/2Z+xEYAeSVE3UGxO/xKvcqnrzlDjxcbkNT+
58WTJB9qPQKBgQC2GjidC2fKbuhHI4Yp1ZTUATHCcjVWG1yDBCmgCla7/zW9i1+k
vAc7QDILBN3xgixMMLWMhRS2QIq/SNxO3mSRgOYZLV2Xs4eho7JCtHNHH7fLOWN6
LXPSeJUC7xIERgy/J/QGr2EbxeiOYXGlO4VeNo3EXfVcl5fcoYEOgP+ZJwKBgFrj
zQXJjrOjxAqXgq7bbcmPbqvipVN+CchklWUpUOugxXhVSIJJdv0DWSII2TKbLwMW
TF+DZbbkImBIY4BffQVirdCeng4tX5bNT3Nywx9/5ApnwemOkI9j62pW7xJZHUMl
295gKIK6d2Ev6ywWGbSLCDOcyCcK9Nnabd0oIozlAoGBAIotsLBc2KdVoSCTzHoW
aI7Hdi1dEDXKK37SqakpDw7fzt3W9z24kgzCtTXV7FfAjUV0PDOav+3VMke+7r5h
0xRdOvO1xev+BufFQx7AyPCbj2H1FUOyjC2QX8CunhwOwUK1nGpooIIqXRELf3jq
wKCXNQ6e5QNXjT6cUifgRCrD
-----END PRIVATE KEY-----"""

#: [model] The TEST key of the common AP's EF 0019, the one key that answers INTERNAL
#: AUTHENTICATE with no credential [card]; its public half is on no file of the card.
TEST_COMMON_AP_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCqElYe+Ybo08ll
G3bbfFr50S3ARd4MWZxTnXLH20ruyDn+GaWbiG/x8NHHcS4xjrgYsuFsrb07Kn4V
E9jo0yiOHqFdS+cy/FOv65ASkdil2QpGZZJOrlM+KgIXKFcNhxS4LHa5rlv/YT6X
N1zzrdbBeo4YcUpGANrm80Ih419NKB1HEgOyM5BmEPqiaOGt2fchXl1kAovhI10t
ioDQYHUGNjzIk36ELbLUuU+4ayWjj4/iXpetsRFY2U6PJnlSKbr+RVi7UOjo5l1G
92IqlLB5UFHRdfrgOGMfZkbYszJTfFi018jPfekjKD7Mie+NHK4HL4YNDxh+Ik++
0OheT1fTAgMBAAECggEAM9QKsr3QQzvncAyCmDi5cNAyZRnlpVXZshGVXRqTJ1mV
cr5WHaPimZSOGX2AWlHoAH7i+7+mn1U/vyShQbK39TeYbVooRv1mc4ISEdaoc0JF
Q1bI03mEnLkoke4VOWYlBktmkwdzucvkyyhwB0K+4495pjFANT0leKRBTxp/fH9x
3a60JNQsYOy+lcsjHxyqImOAv24Z1qNm96zLbpREdp4rG9rgNWVxu6Ef30dqMYvm
c4gR6U0f/XtfrnuY9ujaAPWmCoO3LxQs+BvT/cdAjzlB83GGjAg7A7ywdaAeBncq
CnJ6B7YVURT3tqXgz/QOaIwRcfS5NsdvvZxpl4mK4QKBgQDS1VRVnp6JyLDpekf6
TiJcTQzfPbVe0oYLCXAsF8eFgE8L9SEkXSSKvBKgoEtGs7gFKodIfFhgaqWHcd4k
APK/rAhwAPqPGjbueikEPhIP8BEsnyRDSiIp7xBgZwybyD7uZAm8UnyTlBTqa2pc
kyrfD5HtR+xkFY/oTCAdOhNw5wKBgQDOgYZ89tCJcj3FwTQ4tqAoWgOfO8yR81Jx
h/u7rs7v5XCg1DC5NPXjvLxGmOCIBNYoVbnPQIkGHFriHF5wQQp3UxAPINu8+4FJ
n9Se6ngWHzF98GPxwoD7xACHtx3Zx4Uwdd4kWlgSqPA/4CeHNi2Cg2bqXmkPbBnv
M8c1ojhINQKBgDEZGQCvZcA0im502ZpC4+GW1+6NElW4tRqQ4hyClSZT0RS5yzQK
tN3SGoxph945MBuT4dlRi8s4SsAWFmNQDTfxui1LLQ5yTmSO8kpYoiAwCe/YR7ub
4gTd9XRdyyPkKDOf/Fxs4TIFBDHrPeO9Kfi0SYl2fGh6VP8F61yjD6/1AoGBAJqg
AcOwS5WfJQHeGOweUu3j+LJSZGskdqbr22I9ElYuxpamS5ViQnuz5oY2EmnGtVSe
W/MDr5YTxTlpZI1JJj0SxQOO5voqmDQ4qUwU5LYrxTM3vJ5ZtZrOuFbmlkNrUh9n
Il62BxxxwvMRNIfZ2VnQak8zQhd6KjEh5BgUz2/BAoGBAKq/gKlNgnyryMEBEtF5
lsE2QFpkfU7lb6+JiaLvldkehhaXxTokjAuEq3KB/k/bPib+IH37y78bz7TJsQkW
Z3Jwn+RcinAeeRRxwWShIfPx5qSngJpa+87TvScoRNerpjG7u+rPO+ef20qIfi27
u4HPODkMnADA4ycFAuJmroWI
-----END PRIVATE KEY-----"""


@functools.cache
def load_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(
        pem.encode(), None, unsafe_skip_rsa_key_validation=True
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def public_key_tlvs(key: rsa.RSAPublicKey) -> bytes:
    """The card's public-key encoding: ``90`` modulus, ``91`` exponent [card]."""
    numbers = key.public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return Tlv(CVC.TAG_MODULUS, n).to_bytes() + Tlv(CVC.TAG_EXPONENT, e).to_bytes()


def key_id(key: rsa.RSAPublicKey) -> bytes:
    """[model] A key's 16-byte identifier: the first 16 bytes of SHA-256 of its encoding."""
    return hashlib.sha256(public_key_tlvs(key)).digest()[:KEY_ID_SIZE]


@functools.lru_cache(maxsize=1024)
def sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """RSA-2048 PKCS#1 v1.5 with SHA-256 [card] (256 bytes). Deterministic, so cached: a
    card's file model is rebuilt at every re-issue, mostly for the same holder."""
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


@functools.cache
def certificate(subject_pem: str, issuer_pem: str = TEST_ISSUER_KEY_PEM) -> bytes:
    """``7F21 { 7F4E { issuer key id, subject key id, 90 n, 91 e } 5F37 signature }``."""
    subject = load_key(subject_pem).public_key()
    issuer = load_key(issuer_pem)
    body = Tlv(
        CVC.TAG_BODY, key_id(issuer.public_key()) + key_id(subject) + public_key_tlvs(subject)
    ).to_bytes()
    signature = Tlv(CVC.TAG_SIGNATURE, sign(issuer, body)).to_bytes()
    return Tlv(CVC.TAG_CERT, body + signature).to_bytes()
