"""The live rider dashboard (Dash): current ride, leaderboard, recent rides, fleet."""
