"""Signs in through a Turtlemen gateway as a browser would and prints the session cookie.

    python3 benches/sign_in.py BASE_URL [USERNAME]   (password: correct horse battery staple)
"""
import html, re, sys, urllib.parse, urllib.request, http.cookiejar

base = sys.argv[1]
username = sys.argv[2] if len(sys.argv) > 2 else "bench"
jar = http.cookiejar.CookieJar()
op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
page = op.open(base + "/oauth2/start?rd=/").read().decode()
field = lambda n: html.unescape(re.search(rf'name="{n}" value="([^"]*)"', page).group(1))
form = urllib.parse.urlencode({"csrf": field("csrf"), "return_to": field("return_to"),
                               "username": username, "password": "correct horse battery staple"}).encode()
op.open(base + "/auth/login", form).read()
print(next(c.value for c in jar if c.name == "turtlemen_session"))
