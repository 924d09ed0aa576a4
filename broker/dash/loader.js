/* The dashboard's loader: the only script served without the token. It finds out whether
 * the broker asks for one, asks for it once (kept in sessionStorage, never put in the page),
 * then fetches the app with "Authorization: Bearer TOKEN" and starts it from Blob URLs. */
'use strict';
(function () {
  var KEY = 'sluice.token';
  var form = document.getElementById('login');
  var input = document.getElementById('token');
  var err = document.getElementById('login-err');
  var msg = document.getElementById('boot-msg');

  function headers(tok) {
    return tok ? { Authorization: 'Bearer ' + tok } : {};
  }

  function get(path, tok) {
    return fetch(path, { headers: headers(tok), cache: 'no-store' });
  }

  function blobUrl(text, type) {
    return URL.createObjectURL(new Blob([text], { type: type }));
  }

  function start(tok) {
    msg.textContent = 'Loading…';
    return Promise.all([get('/app.css', tok), get('/app.js', tok)]).then(function (rs) {
      if (!rs[0].ok || !rs[1].ok) {
        throw new Error('the broker answered ' + rs[1].status);
      }
      return Promise.all([rs[0].text(), rs[1].text()]);
    }).then(function (t) {
      var link = document.createElement('link');
      link.rel = 'stylesheet';
      link.href = blobUrl(t[0], 'text/css');
      document.head.appendChild(link);
      /* The app reads the token from here, once, and keeps it in a closure. */
      window.sluiceBoot = { token: tok };
      var s = document.createElement('script');
      s.src = blobUrl(t[1], 'text/javascript');
      document.head.appendChild(s);
      document.getElementById('boot').hidden = true;
    });
  }

  function ask(why) {
    msg.hidden = true;
    form.hidden = false;
    err.textContent = why || '';
    input.value = '';
    input.focus();
  }

  /* Is tok (may be '') accepted? Resolves true/false; rejects when the broker is down. */
  function check(tok) {
    return get('/v1/stats?max=0', tok).then(function (r) {
      if (r.status === 401) {
        return false;
      }
      return true;
    });
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var tok = input.value;
    input.value = '';
    err.textContent = 'Checking…';
    check(tok).then(function (ok) {
      if (!ok) {
        ask('Wrong token: the broker refused it.');
        return;
      }
      sessionStorage.setItem(KEY, tok);
      form.hidden = true;
      msg.hidden = false;
      return start(tok);
    }).catch(function (e) {
      ask('The broker is unreachable: ' + e.message);
    });
  });

  var saved = sessionStorage.getItem(KEY) || '';
  check(saved).then(function (ok) {
    if (ok) {
      return start(saved);
    }
    sessionStorage.removeItem(KEY);
    ask(saved ? 'The saved token was refused: give it again.' : '');
  }).catch(function (e) {
    msg.textContent = 'The broker is unreachable (' + e.message + '): reload to try again.';
  });
})();
