"""Published TEST JPKI keys: the RSA-2048 keys every virtual card uses unless fresh keys
are asked for (``--fresh-keys``, ``MYNA_HIL_FRESH_KEYS=1``).

**These are TEST keys, published on purpose** (as the text and surface APs' keys in
:mod:`emulator.apps.cvc` and the issuer key of :mod:`emulator.commands`): anyone can sign
with them, no real card, CA or verifier trusts them, and they must never protect anything.
They exist because generating four RSA-2048 keys took 0.3-0.4 s of every run and every
card; the certificates are still issued per card (fresh serial numbers, so each card keeps
its own identity), only the key pairs are shared. Why shipped rather than cached per
machine: docs/card.md#test-keys.
"""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

#: Roles of the published keys, as :func:`published_key` names them.
AUTH_CA, SIGN_CA, AUTH, SIGN = "auth_ca", "sign_ca", "auth", "sign"


#: TEST key: the TEST user-authentication CA. Published; not a secret.
_AUTH_CA_PEM = b"""-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDT2FlYb723qwVZ
evBsimuDy3vRUnAOzS9I4OqJUJf04ATrKLjC0X+kNFMjYWeJgTTlBrzXhuJnkci0
ejymM4ldtVsBQbToKZLKeVWrRGWXXpOgVABZc+m4869Ie2e2jnoco8hDTKf2WXeY
PCQS8YxRbOniB9/U6Nyv4BqGQ0U/nnrMtJu6VvjM9EAqiFleC9ASrxjJQ5hPdBP/
bmY1oIA4pVkHlZFpOkVY/CnAD79gAHasq12GoIZokc5bnyJ9Tx36dlnaUFGWG1ZC
CPkTMSLS7PccxZK5taYKag1DNprdsmf6sHJSPPtAm3q+tXyHX1oxNp5jDmwFzGgA
oSiDn6ttAgMBAAECggEABd9fvK6eTv7f71bT3uJocBceN9OF9TcVajsH7WYNTFXA
dSdkFcx6chocOuUammp5RacN6Zic4pudOXmRAFd55Z3fJ7YDVpM+dTvvVsfW3B8c
Twu9Fb27myuwLn1zRtGEy5HzvX/cwRzCTrdOFbNZ/TDce+5Vc2DAK2T2P0YSn5yP
Wykq4iVc0g3Np/2k4tazkF2jHIClFzklmY3zT0UbGPAGJ5dF/xIPTxszOt5HFcJv
B43K8X6YJ5Q37Npywo8ukEJml5fLHawFqYqA7L3r+8R7Pq/0XJBxDVdZyL7Vs1o5
r3rU8yr4P/1A8HT1T83V9wHBa7GD2DLCcZ3CIJonKQKBgQD+ZrBwaIda+pMzx9X3
8j7IWlj2M3P/A+nG3UidJr4LtU83Fm41llPEQfwaEOTGj19/FXwmZMZaVkGnDNyw
zzS4k7p58tsLwsSuNIU3zW6tgT5BprpQJHi78qpgbo1iis1voG5Tv22J7SgyU+s7
If9yXBg2RasgiZ8Ycmja64DGdQKBgQDVLTDL6fXO3t4TxvKnPrJyallhGEIlcxpN
UP5QcUme4slZet5+07PmIoS3f+QisgxoAQibLHxW9FooWrg2SPjymjTnIG/+kI/+
z1B328fsC4yJQwGQyTD9tcJDqY+L7ZcBe53Tv/LJpc/xINyJOT+rZ2N2mcA4ZZTT
OBhIMFXiGQKBgEjEos9kduMlLZnwHVoQ5rh0b2HtEc7uFZ6WiUC6Zj3/HKuLNPcL
CubmYPAryOSq+gvl3180EDCi36Ci4zWH73KkfwCG4PUaPxv9VeXCU1g50c8Bm+V0
qTxJi0aOGM8JGP5HC4fVB8YeGhNbQbvmW6UghqRvhSWHeASMJUYJewpJAoGAdMBk
SjnfoyYScLh0Kz6+UsWGIBQ+He6VSCUEs5/oFznT1srhUoq1q2PaVfmYQ5xKCSgP
w5SwoJsBSbqtyyVaGtxz/uWYEM6x3ndCdfKL4u5MUNy+3cIir8E9HPufn55HJsvC
G7ezy9ahNUmvHwSYp1JfehQo33pa8Pd27Qpz7vkCgYEAgxA5PgiSaxoqIJDqhEaY
boO8kLJyM0KqWNRXApvvxuGNmi5cgnimhplFT9Ww5FMgxKiSSpedA7jeRoWWLXIP
EAVmUeIb+06pN085SmfPsXBaitnil/XqEakSfqxxKwkXCVklt68ab2Ue8oiXr/9v
ZZOJyRBKNta7YOjsyfdbT8s=
-----END PRIVATE KEY-----"""

#: TEST key: the TEST digital-signature CA. Published; not a secret.
_SIGN_CA_PEM = b"""-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC/TZJww2iL2f6P
d+7vE7GSiILj7iMoCo4S941rM6pJH6dGoicitaAg4qfuXOQd+SsByVLodpCCRfIv
m5X6t93YLcofgIbRO/SwQWHcfwoD1UE5XR0Z9qnfEX1kZQoGHgHIONkwP8ABpZqc
o7qLNtbFjsRae1by0kR4swWAHVukfQbSKUnxEelL80NlLyAcbi/u4Gfb/AqP2nxw
Gc4f2EME1nVXOn4qgS7W5Ixg5KqcuQBUOLwXEh30QTKaY5s3DqYfKAm41gUdpKLy
pX+3g3HYF1bC7nXtmL2DpFUdo8O75jE5sXyJy7ZsDI5GAfTfbGuI2Y4NzgdNKYWS
nypF79cbAgMBAAECggEAAZ8bNCh73N+aqEWoeU9N7IOKtHriwmaggKmngbac5WTG
yrL6KPGoK08whDU2W8iuZCP8N2s121zTajLj6Q2g7EGrGmxA+EoNT2cmeLN89r5a
gK143yz3kKP5z52JobakZjmRIbcQnhL0xgofPSnYVTFaGbg86u78VJeT3tug2LqQ
0O3MqEEQfDtPdCwk93E9Y1IDhK/LYByUkP4SxHFVT8JOS4vg+8muCXYP+Bz4H0ug
dpgyvKIxRUZFqw+WVav3YtRA9ExFQDpa1HFezdFSM/uDIIOgEtazot0nJP4aUyqA
u+nsmuuCpKPCffYlPB3YI47leRvIwzp+169jMMchhQKBgQDjx7DbyTW7s99+iR7B
bM/dSOsVeIHSqfRmjo2utt3s6XSbdxhUhFqYONOvZ2qKv3NDYTlWylyv+puW8YZ3
IxMZwqcloX4ugSz7grNEJUFqSUNyicYuF/EII17yTEesUtmi/EOyZuGkjGl5uTZC
AQ/4AamKNq/LMG2byPf/FUOE/wKBgQDXAPhGf4ySYgWgsO35B4uBoHkyum7mJCIk
0zJeTuTKMpnRpfyXBe5yJUdGbWiA+xzVgKIm7rqLBhHu61afPCr9IelfV/0Hdisg
gKzC+TMK39ZgLcAWxWYMrRlfEGG0qlaRRhysBdPrjeGx07Pf6SeRETHYDsML8q2Y
In2E+psh5QKBgQC8ReCfqm6pmYHQO1KamnAt/gmiE5trH2OOKaJemXRSUJ07q3MG
2OdxDveZ8icUTC7fsMsOO/Hk24Yje7ujWfB9yHEUH6oGkms18NBwMUMisS/4ynxu
uQdXrLTcHcTYYRrXJyBlo7g6pHzCSh7Y67vhSK50OcOQdZUDwVeLFm5azQKBgEy6
T9/4zNXAnXmHKqXgh2yvNBFibwk6g+TYafU1+ngeLr6emdHbkAi0PQdpLA47j0Ky
MSvrri7G78dvvO3+rui/HWWlJOtwxFtJEF5USF7tGrggG5kEwTJs480FL5kl4Nbf
SoQpYEOD0rN/dYXG0xP2Ku+L9Rdid4j/ZgP62znxAoGACBtze6nb0vYmjtPi2V/t
GlcHohoOXa7bSO8FlwdABD4kYNxhy2HHRevPz+NG+vO/ZVf+C/rhsK7Yc2Z8w3XG
MxJcHJB8+ArsnfDz3PUlqvJdbic8gO+A92g7jF3suLEiYGhcmUUdmNASKxK67NJu
9qUn7xVsu8FcQTvF0zWpvDA=
-----END PRIVATE KEY-----"""

#: TEST key: the card's user-authentication key (EF 0017). Published; not a secret.
_AUTH_PEM = b"""-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDS4L/Fkxf51bsr
JZEAemJvPU876eMQHp2ZzQ0FOGfXeXAI91I8j9u6Ksqcjh3qU4aOZpV3pyicD1jU
PWh9CyysoRvWkxik06Tg37eL1kjq6IxtGM7JYbXiI7ti7EnkuhJo0FIE1ngAx30r
DkfKK2/wErWUcN2Rgl3n8Rd6NyhjKwsLzQpLX8Cae+MLo++JgXKY7DRItDUi/k8y
40ntgiv+DAQ+wiav30DwP7oPXjWWZT6f0608RbhkgB4skdVClA8ergsZA48PA9DW
sML6hID999IVbQRtz66yvSAVR5nOfUUKac91rfTXcdlG/wYP0+0j/DV/VLaMMFLN
9+GZxECvAgMBAAECggEADuH+yg5nq3tXbApvZLKLS1RVfCIb8BGarnXUaYRoGI+0
OP9ff4ro1CEPm9bDd+8jxXdDxqYpzXQ5B2c7Sx8keYO4IVlpuVd+9Chfd1zzWEtH
5RRsCU/Xx6YdV2d1KNF7DO7hT81+ungmnNXNE92J8M5MbQJw/ymz8ybGsRqLqdsi
7JrlRiVOkC4eGRspD4LNz0fAjmCXUV6raS8tIBeS9mUHdunYLRucpa/0M7OSBNur
2UPNlwhXzqC1wlyIZ7+iGzmrqdiG89hRTQk3yDXFLCwBcIMEwDlXKwE0m5CMbhDS
pW+repXHEunRYgTjvVLv9SdckaXlTIszke24Lzmo3QKBgQDtz6tKDMgyKbytwqkJ
UF9kHuYPqTp9dZrBwz8doRpYFlPdNE4BHlxe7WTOQjcaZ5aVzhM63Ucyj/Nzdhho
WgisjxBnbIDf9YRblHePHBMBW9Q0ulbjsGg7JGiY88OCxjxQAwjY/pgtytCsFv+e
u/WOnAzuleQde+8Yiwh5bSv1qwKBgQDjAbpQC/jVy6PbQrj4jOdhmUrESHMWS+T9
ZWcVzo+4KqV1UoWCiebPaKf/CBrttSGb2AUQWo8d2Zzj1rs/L8ZgjHN/iVImTbnG
gwMy5Kwwt1gUA9EAJ37DqfBqBQfpevFES2wi+nSUVxhNPMHBCNW/QdouxjDYgxFz
XLHSHOVVDQKBgBO9aTp8VSHU1RSXU/Cx+zkUV4R1R6WiXXY3/sU22jj1oYB7Fv6A
xqoaioOUe351mspUkMQSGhbYXBz5cI046/9m4LW1C/2LI7F2YXY/nlQ+ix7VWOEN
g5llLEmF8nSof9kkZ1ebyoYCj8+5GP7UG037Jhen2YeZAf/HiqyJo1yBAoGABHU5
Om8xwMkR+7FQvpjNxm3jOP2PPQXahltibdwzmFNGEoq/UnPw02vjuK9pD/f5o/zX
BJ4yp0xpt1O1M6V1iNnZPszsjxIBrvNNsccp1n8TPLlidlVQOPlyXjKhGCWw7T1p
7znp5ivbr1CdIXRR9kKNzVNZDDdutUxBtbWZj1UCgYEAh2jGu/MeE8b/Ua15oB8e
qYjK3xMy2u+2stdvJAzSFNOAmSh6UI5HfuoyXGqesAkonmAbKhMkEI7Od5zF6V2c
peECFd6LwdKlNf8OQPTXWipbdMeg5heGZolQ+DmCELIrhCjTfAKRBoYDDwCvDNHs
R4YEfhh6GQe2UHGwBcyECuQ=
-----END PRIVATE KEY-----"""

#: TEST key: the card's signing key (EF 001A). Published; not a secret.
_SIGN_PEM = b"""-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCvTfwppLea56Oa
0iOkdxVFKgOpwul/o2ojwPSlRmPI8xzkAnpnlZGuaSaOoq5B1iUnZIdZyCecMQ36
Zws9/lgyXe+/mSVoYIl0ZI0kJTApfpsj80X3rDJzC5XrqwMS93lQIFhI2onKF1Gm
/ym6Zt9GOVeID2uGISTYeXSS29sJHPxQ65Tmcfyi7mU5Fkt8r8Q3HiX4PpVDJT+i
/pt/r15HYGCRzHbwXQK7Fsn1qKI3F/qlrqQn/ANTA98B2y4GEdbKXkjUsncIi8Eh
wQYEg9OYtEW/gdqV30EfKFS8L9DxASIoD05K55HhoGFvuWNw0XnZeAUQeONwqboL
HyePxBbXAgMBAAECggEAJ2p58aUTEVXW79ci43ZRBoGZXECyfpvwIAThHQ40Hnkn
PE8gVY0IOfZzkGuckboEFZThZ/r8iP5wnaYwnWpES2LaprJY+lyGW3DGWWOxLgtE
97LZvwPtPffTaC9F3CxfjvgO0aath45xsgI6UCqUNjZra3DIJNrr7W51mxWq7KPD
7BQ5VxD0cMCoC+0nQJ4ui/hElKVcjRv1wXGjyBcUIw3YpMeePy1G6FpNIsCtMwLf
K9nyKZXZc0/bkmPFqwW3S51q5H/95K4bZbeOcszbAD+ov4xS0zdd93hdFfrMY3we
S9gOYn0JdMEAuXWOyfTuTsbZpcw51XokvU/FFuICyQKBgQDd1BmyI0fCUKSELwcn
qbS2R2pG8f+EEEHRcBcwHnuM6PqRKl+gQA58zsXD1hQ+0OZT/Q6qIRD65wXQACqv
ZKpJj+ze1yinFbWBquF/V5JrvYl7aNeFu9rr0CIS+bzp3NcrYOqTR/GngbxuDExh
PNjwMWrx9BlrtxYjBmOQkhnuHwKBgQDKTzIf/0d1MemMmKl6iWyryycsy9Jptvvg
a1wBfLlDwk9nfDLfhIswL19osmb3pgVqiRdCb+udQO2VFBlOFc5BYXNOu8rMQzRW
utiKDGTKwAuLikm7JKpYt3Tg6GKDdP4F0taMSTxdMkl4ZZV3Tje4AQhrhP7Rv5IT
H5UlIlrQSQKBgQDMNDY7YHLslCP+cvRZNMZgjjltedTIE9cjH9aYu1btDoOrIqDI
+m7bwdUYRHh6ov+FDY10W+AvuIAHTD//GeIQuedJ9DM+LKPb7ByNh2YIvIBVFNxi
Bd6v+feEFFYtythg3GTUlAQHOUzm2Xdug/8IjdVvSlAkcnR0Zas+KOCp7QKBgQCW
+TDT1gJyf9PlGwvmqOVS8qECefxE7cvbduLLLVNoMHpnJLUmPlhMlh2iGPhkOR3z
meikqLbwvEJQLRaRQg6QlfOhvtyhQEmvq3Hq20LgVx6GfKV3Je6FlCqBqInTxhvH
Jsb7G7ATcHKJiW1YAiPsicDJ1A8BYe/Vm40GkDOrGQKBgGJtTPhL6UYInAa+1Kmq
6x6Kqh7f2EXcKRuyTVuvGhwwuKHItp2370umq9iFKJMq55qDboJxrddQwc8i1pVI
5KeeV6IWaI9UgxBuCGWhuMBP6cAm+44oK6epfR5XR5Tqq+O+H48uWZmUJ2rAlo9G
aJtmFi7Vr5/dtlvZ4A/aUZIQ
-----END PRIVATE KEY-----"""

_PEMS = {AUTH_CA: _AUTH_CA_PEM, SIGN_CA: _SIGN_CA_PEM, AUTH: _AUTH_PEM, SIGN: _SIGN_PEM}
ROLES = tuple(_PEMS)


@functools.cache
def published_key(role: str) -> rsa.RSAPrivateKey:
    """The published TEST key of *role* (loaded once per process)."""
    # Validated by tests/emulator/test_published_keys.py; skipping the check here saves
    # ~20 ms per key on every start.
    key = serialization.load_pem_private_key(_PEMS[role], None, unsafe_skip_rsa_key_validation=True)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key
