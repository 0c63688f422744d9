"""The friends' app: pages and a JSON API served by the daemon on loopback, shown in a window or any browser.

guard       who may talk to the local server (Host, Origin, token, the cookie from a one-time address)
server      the aiohttp application: middlewares, routes, static files
service     what the app can do: the one place the pages and the JSON API both call
pages       server-rendered pages (Jinja2) and their forms
api         the JSON API under /api/ (the CLI's and scripts')
events      the live stream (Server-Sent Events) of queue, progress, news and account changes
downloads   the download queue: order, pause, resume, cancel, progress and speed
runner      carries out one queued job with the installer
catalog     the tracker's catalog, cached for offline use, with header images
friends     who is online, who downloads from whom, totals per friend
preferences the app's own settings (notifications, start with the system)
settings_form the settings page: sharing, the games folder and the preferences, checked whole, then saved
play        running a game, time played, updates held while it runs
desktop     desktop notifications, the launcher entry and the autostart entry
window      the pywebview window (the one module that imports webview)
launch      `mist app`: start the daemon if needed, get a one-time address, open it
"""
