"""The phone app's side of the server: the signed device API (/device/v1) and Web Push delivery."""
