-- ORCA "Dynamic Flags (Roadmap v1.1)": the database-backed flag table, exactly as specified.
CREATE TABLE IF NOT EXISTS feature_flags (
  flag_name VARCHAR(100) PRIMARY KEY,
  enabled BOOLEAN DEFAULT false,
  rollout_percentage INTEGER DEFAULT 0,
  user_whitelist TEXT[],
  tenant_whitelist TEXT[],
  created_at TIMESTAMPTZ DEFAULT NOW(),
  updated_at TIMESTAMPTZ DEFAULT NOW()
);

-- The feature rollout flags of "Flag Categories" §1, dark by default.
INSERT INTO feature_flags (flag_name) VALUES
  ('new_trust_algorithm'), ('advanced_policies'), ('real_time_websockets')
ON CONFLICT (flag_name) DO NOTHING;
