/** Where the answer goes, as a person should read it: the host, or the app scheme. */
export function redirectTarget(redirectUri: string): string {
  try {
    const url = new URL(redirectUri);
    return url.host || `${url.protocol}//`;
  } catch {
    return redirectUri;
  }
}
