// The review app's page (shotrunner review): pick, reject and undo through the server, the
// keyboard (j/k shot, 1-9 play take, p pick, x reject, u undo), takes of a shot played in sync,
// and live updates: the page asks the server for changes every few seconds and replaces the
// shots whose markup changed. Every request goes to the page's own origin, under its token
// (the page's URL is /TOKEN/, so relative URLs carry it).
(function () {
  "use strict";
  var body = document.body;
  var version = body.getAttribute("data-version") || "";
  var pollMs = Number(body.getAttribute("data-poll")) || 2000;
  var statusLine = document.getElementById("review-status");
  var undoButton = document.getElementById("undo");
  var current = null; // the shot the keys act on
  var chosen = {}; // shot id -> the take last chosen in it (a click, or 1-9)

  function say(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", Boolean(isError));
  }

  function shotOf(element) {
    return element ? element.closest("section.shot") : null;
  }

  function shotSection(id) {
    return document.getElementById("shot-" + id);
  }

  // --- talking to the server ---------------------------------------------------------------

  function send(path, payload) {
    return fetch("_api/" + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
      cache: "no-store",
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().then(function (doc) {
        if (!response.ok) {
          throw new Error(doc.error || response.statusText);
        }
        return doc;
      });
    });
  }

  function setUndo(said) {
    undoButton.disabled = !said;
    undoButton.title = said ? "undo " + said + " (key u)" : "nothing to undo";
  }

  function replaceShot(shot) {
    var old = shotSection(shot.id);
    if (!old || old.getAttribute("data-digest") === shot.digest) {
      return;
    }
    var template = document.createElement("template");
    template.innerHTML = shot.html;
    var fresh = template.content.firstElementChild;
    if (old === current) {
      fresh.classList.add("current");
      current = fresh;
    }
    old.replaceWith(fresh);
    markChosen(fresh);
    setupSync(fresh);
  }

  function applyUpdate(doc) {
    Object.keys(doc.totals || {}).forEach(function (key) {
      var cell = document.querySelector('[data-total="' + key + '"] b');
      if (cell) {
        cell.textContent = String(doc.totals[key]);
      }
    });
    Object.keys(doc.filters || {}).forEach(function (key) {
      var count = document.querySelector('nav.filters [data-filter="' + key + '"] .count');
      if (count) {
        count.textContent = String(doc.filters[key]);
      }
    });
    (doc.shots || []).forEach(replaceShot);
    if ("undo" in doc) {
      setUndo(doc.undo);
    }
    // A verdict's answer holds one shot only: the next poll still compares the whole page.
    if (doc.version && !doc.partial) {
      version = doc.version;
    }
    document.dispatchEvent(new CustomEvent("sheet:changed"));
  }

  function giveVerdict(shotId, take, verdict) {
    return send("verdict", { shot: shotId, take: take, verdict: verdict })
      .then(function (doc) {
        doc.partial = true;
        applyUpdate(doc);
        say(verdict + " " + shotId + " take " + take + " · u undoes");
      })
      .catch(function (error) {
        say(error.message, true);
      });
  }

  function undo() {
    return send("undo", {})
      .then(function (doc) {
        doc.partial = true;
        applyUpdate(doc);
        say("undone");
      })
      .catch(function (error) {
        say(error.message, true);
      });
  }

  function poll() {
    fetch("_api/state?since=" + encodeURIComponent(version), { cache: "no-store" })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (doc) {
        if (doc && doc.poll_ms) {
          pollMs = doc.poll_ms; // longer on a big sheet, so polls never crowd the server
        }
        if (doc && !doc.unchanged) {
          applyUpdate(doc);
        } else if (doc) {
          setUndo(doc.undo); // after a reload, or a change made from another tab
        }
      })
      .catch(function () {
        // The server stopped: keep the page as it is and try again later.
      })
      .then(function () {
        window.setTimeout(poll, pollMs);
      });
  }

  // --- choosing a shot and a take ------------------------------------------------------------

  function setCurrent(section) {
    if (current === section) {
      return;
    }
    if (current) {
      current.classList.remove("current");
    }
    current = section;
    if (section) {
      section.classList.add("current");
      section.scrollIntoView({ block: "nearest" });
    }
  }

  function markChosen(section) {
    var take = chosen[section.getAttribute("data-shot")];
    section.querySelectorAll("article.take").forEach(function (card) {
      card.classList.toggle("chosen", Number(card.getAttribute("data-take")) === take);
    });
  }

  function choose(section, take) {
    setCurrent(section);
    chosen[section.getAttribute("data-shot")] = take;
    markChosen(section);
  }

  function visibleShots() {
    return Array.prototype.slice.call(document.querySelectorAll("section.shot")).filter(function (s) {
      return !s.hidden;
    });
  }

  function move(step) {
    var shots = visibleShots();
    if (!shots.length) {
      return;
    }
    var at = shots.indexOf(current);
    var next = at < 0 ? 0 : Math.min(Math.max(at + step, 0), shots.length - 1);
    setCurrent(shots[next]);
  }

  function currentShot() {
    if (!current || current.hidden || !document.body.contains(current)) {
      move(1);
    }
    return current;
  }

  function playTake(take) {
    var section = currentShot();
    if (!section) {
      return;
    }
    var card = section.querySelector('article.take[data-take="' + take + '"]');
    if (!card) {
      return;
    }
    choose(section, take);
    var video = card.querySelector("video");
    if (video) {
      if (video.paused) {
        video.play().catch(function () {});
      } else {
        video.pause();
      }
    }
  }

  function verdictByKey(verdict) {
    var section = currentShot();
    if (!section) {
      return;
    }
    var id = section.getAttribute("data-shot");
    var take = chosen[id];
    if (!take) {
      say("choose a take first: 1-9 or a click on it", true);
      return;
    }
    giveVerdict(id, take, verdict);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-verdict]");
    var card = event.target.closest("article.take");
    if (card) {
      choose(shotOf(card), Number(card.getAttribute("data-take")));
    }
    if (button && card) {
      giveVerdict(
        shotOf(card).getAttribute("data-shot"),
        Number(card.getAttribute("data-take")),
        button.getAttribute("data-verdict")
      );
    }
  });

  undoButton.addEventListener("click", undo);

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    var target = event.target;
    if (target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "range"))) {
      return;
    }
    var key = event.key;
    if (key === "j" || key === "k") {
      move(key === "j" ? 1 : -1);
    } else if (/^[1-9]$/.test(key)) {
      playTake(Number(key));
    } else if (key === "p") {
      verdictByKey("picked");
    } else if (key === "x") {
      verdictByKey("rejected");
    } else if (key === "u") {
      undo();
    } else {
      return;
    }
    event.preventDefault();
  });

  // --- takes in sync -------------------------------------------------------------------------

  function syncGroup(section) {
    return Array.prototype.slice.call(
      section.querySelectorAll("article.take video, details.versions[open] video")
    );
  }

  function longest(group) {
    return group.reduce(function (most, video) {
      return isFinite(video.duration) && video.duration > most ? video.duration : most;
    }, 0);
  }

  // Two or more clips of a shot get one play/pause and one scrubber; the first clip leads and
  // the others follow it when they drift.
  function setupSync(section) {
    var clips = section.querySelectorAll("article.take video, details.versions video").length;
    if (clips < 2) {
      return;
    }
    var bar = document.createElement("div");
    bar.className = "sync";
    var play = document.createElement("button");
    play.type = "button";
    play.className = "sync-play";
    play.textContent = "play together";
    var scrub = document.createElement("input");
    scrub.type = "range";
    scrub.className = "sync-scrub";
    scrub.min = "0";
    scrub.step = "0.01";
    scrub.value = "0";
    scrub.setAttribute("aria-label", "position of every take");
    var clock = document.createElement("span");
    clock.className = "sync-time";
    clock.textContent = "0.00 s";
    bar.appendChild(play);
    bar.appendChild(scrub);
    bar.appendChild(clock);
    section.querySelector(".shot-meta").appendChild(bar);
    var playing = false;

    function seekAll(at) {
      syncGroup(section).forEach(function (video) {
        video.currentTime = isFinite(video.duration) ? Math.min(at, video.duration) : at;
      });
      clock.textContent = at.toFixed(2) + " s";
    }

    play.addEventListener("click", function () {
      var group = syncGroup(section);
      scrub.max = String(longest(group) || 1);
      if (playing) {
        group.forEach(function (video) {
          video.pause();
        });
        playing = false;
        play.textContent = "play together";
        section.removeAttribute("data-syncing");
        return;
      }
      seekAll(Number(scrub.value));
      group.forEach(function (video) {
        video.play().catch(function () {});
      });
      playing = true;
      play.textContent = "pause together";
      section.setAttribute("data-syncing", "1");
    });

    scrub.addEventListener("input", function () {
      seekAll(Number(scrub.value));
    });

    // timeupdate does not bubble: listened to on the way down (capture).
    section.addEventListener(
      "timeupdate",
      function (event) {
        var group = syncGroup(section);
        if (!playing || event.target !== group[0]) {
          return;
        }
        var leader = group[0];
        scrub.max = String(longest(group) || 1);
        scrub.value = String(leader.currentTime);
        clock.textContent = leader.currentTime.toFixed(2) + " s";
        group.slice(1).forEach(function (video) {
          var inside = leader.currentTime < (video.duration || 0);
          if (inside && Math.abs(video.currentTime - leader.currentTime) > 0.2) {
            video.currentTime = leader.currentTime;
          }
        });
      },
      true
    );
  }

  document.querySelectorAll("section.shot").forEach(setupSync);
  window.setTimeout(poll, pollMs);
})();
